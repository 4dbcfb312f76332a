"""Search spaces small enough for tests (plain text; no imports), shared by the test files that search them."""

# 16 architectures: two widths per stage, SE or not per stage
TINY_STAGES = """
kind: stages
name: tiny
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu, max_size: 32}
stages:
  - {width: [8, 12], stride: 1}
  - {width: [12, 16], stride: 2}
repeats: [1]
families:
  residual:
    template: basic
    params: {se: [0.0, 0.25]}
head: [{op: global_avgpool}]
"""

# 2 architectures: one stage of two widths
PAIR_SPACE = """
kind: stages
name: pair
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu, max_size: 32}
stages:
  - {width: [8, 12], stride: 1}
repeats: [1]
families:
  residual:
    template: basic
head: [{op: global_avgpool}]
"""

# two stages of two widths each, two families: residual (SE or not) and MBConv (two kernels, two expansions)
TINY_MIXED = """
kind: stages
name: tiny
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu, max_size: 32}
stages:
  - {width: [8, 12], stride: 1}
  - {width: [12, 16], stride: 2}
repeats: [1]
families:
  residual:
    template: basic
    params: {se: [0.0, 0.25]}
  mbconv:
    params: {kernel: [3, 5], expansion: [2.0, 3.0]}
head: [{op: global_avgpool}]
"""

# one stage of two widths, the two families of TINY_MIXED
ONE_STAGE_MIXED = TINY_MIXED.replace("  - {width: [12, 16], stride: 2}\n", "")
assert ONE_STAGE_MIXED != TINY_MIXED
