"""`nas recipes [NAME|FILE ...]`: the training recipes `--recipe` takes (shipped with nas, or your own
.yaml files): name, one line of description and the key settings; with names, every setting.

    nas recipes                        # the shipped recipes (darts, fast, final, search) and what each sets
    nas recipes darts --json           # every setting of one recipe
    nas train darts_v2 --dataset cifar10 --recipe darts --epochs 50     # a recipe, one setting overridden
"""
from __future__ import annotations

import argparse
import json

from nas.train.recipe import load_recipe, recipe_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME|FILE",
                        help="only these recipes (a shipped name or a .yaml file), with every setting")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    recipes = [load_recipe(name) for name in (args.names or recipe_names())]
    if args.json:
        print(json.dumps({"recipes": [{**r.to_dict(), "key_settings": r.key_settings()} for r in recipes]},
                         indent=2))
        return 0
    if not args.names:
        width = max(len(r.name) for r in recipes)
        for recipe in recipes:
            print(f"{recipe.name.ljust(width)}  {recipe.description}")
            print(f"{' ' * width}  {recipe.key_settings()}")
        print("\n`--recipe NAME` on nas train, search and compare; options written after it override its settings.")
        return 0
    for i, recipe in enumerate(recipes):
        if i:
            print()
        print(f"{recipe.name}: {recipe.description}")
        for key, value in recipe.settings.items():
            print(f"  {key}: {value}")
    return 0
