"""Zero-cost proxies: score an untrained network from one minibatch (or none), larger = predicted better.

    candidate = Candidate.of(genome, data, seed=0)          # a seeded network and one minibatch
    score("synflow", candidate)                             # a float

Each proxy builds its own fresh network from the candidate (`Candidate.network()`, the same seeded
initialisation every time), so one proxy's changes (synflow takes absolute values of the weights) never
reach another. "Layers" are the convolutions and linear layers (`nn.Conv1d/2d/3d`, `nn.Linear`): the
prunable layers of the papers' code. Definitions follow Abdelfattah et al. 2021, "Zero-Cost Proxies for
Lightweight NAS" (ICLR), section 3 and appendix A, which collects the pruning-at-initialisation scores,
and Mellor et al. 2021 (NASWOT, ICML, eq. 2) and its 2020 first version (jacob_cov). The loss is cross
entropy on the minibatch; a network is in training mode (batch statistics) unless the proxy says otherwise.
`params` and `flops` are the baselines every proxy must beat (Ning et al. / ZiCo, ICLR 2023: no earlier
proxy beats #params consistently); they equal `nas.summarize(genome)`.

A proxy that cannot be computed for a network (a network without any ReLU for naswot, a Jacobian that
is constant over the batch for jacob_cov) scores -inf, its documented minimum.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from nas.compiler import build
from nas.evaluate.registry import PROXIES, get_proxy, proxy
from nas.genome import Genome
from nas.summary import count_flops, summary
from nas.train.loop import trial_seed

LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# activations whose output is > 0 exactly where their input is > 0: the "linear region" code of NASWOT
GATES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Hardswish, nn.GELU)


@dataclass
class Candidate:
    """What a proxy sees: `network()` (a fresh, seeded, untrained network on `device`), the minibatch
    `x` (normalised float images, N x C x H x W) and `y` (labels), and the genome when there is one."""

    build: Callable[[], nn.Module]
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    seed: int = 0
    genome: Genome | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def cost(self):
        """`nas.summary` of the genome (params, FLOPs), computed once."""
        if not hasattr(self, "_summary"):
            self._summary = summary(self.genome, num_classes=self.num_classes, in_channels=int(self.x.shape[1]),
                                    input_size=tuple(int(s) for s in self.x.shape[2:]))
        return self._summary

    def network(self) -> nn.Module:
        torch.manual_seed(self.seed)
        return self.build().to(self.device)

    @staticmethod
    def of(genome: Genome, data, *, seed: int = 0, batch_size: int = 64,
           device: torch.device | str = "cpu") -> "Candidate":
        """`genome` (realized for `data`, a `DatasetSplits`) with a seeded minibatch of `batch_size`
        training images; the network's initialisation is seeded by `seed` and the genome's fingerprint
        (as a trial's, `nas.train.loop.trial_seed`)."""
        device = torch.device(device)
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(data.train), generator=generator)[:batch_size]
        x = data.normalize(data.train.x[index]).to(device)
        y = data.train.y[index].to(device)
        return Candidate(lambda: build(genome, num_classes=data.num_classes, in_channels=data.channels,
                                       input_size=data.size), x, y, data.num_classes,
                         trial_seed(seed, genome.fingerprint()), genome, device)


def layers(model: nn.Module) -> Iterator[nn.Module]:
    return (module for module in model.modules() if isinstance(module, LAYERS))


def loss_backward(model: nn.Module, candidate: Candidate) -> None:
    """Cross entropy of the minibatch, backpropagated (training mode, gradients from zero)."""
    model.train()
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(candidate.x), candidate.y).backward()


def score(name: str, candidate: Candidate) -> float:
    """The proxy `name`'s score of `candidate` (a float; -inf where the proxy is undefined)."""
    return float(get_proxy(name).score(candidate))


# ----- the baselines -----
@proxy("params", paper="number of parameters (the baseline: Ning et al. 2021; ZiCo, Li et al. ICLR 2023)",
       uses_data=False)
def params(candidate: Candidate) -> float:
    """Number of parameters: `nas.summarize(genome).params` (of the built network when there is no genome)."""
    if candidate.genome is not None:
        return float(candidate.cost().params)
    return float(sum(p.numel() for p in candidate.network().parameters()))


@proxy("flops", paper="FLOPs per image (a baseline, as params)", uses_data=False)
def flops(candidate: Candidate) -> float:
    """FLOPs of one image's forward pass: `nas.summarize(genome).flops` (torch.utils.flop_counter, 2 per multiply-add)."""
    if candidate.genome is not None:
        return float(candidate.cost().flops)
    return float(count_flops(candidate.network(), candidate.x[:1]))


# ----- gradient-based (Abdelfattah et al. 2021, section 3) -----
@proxy("grad_norm", paper="Abdelfattah et al. 2021, grad_norm: sum over layers of ||dL/dW||_2")
def grad_norm(candidate: Candidate) -> float:
    """grad_norm (Abdelfattah et al. 2021, section 3): the Euclidean (Frobenius) norm of the loss gradient
    of each layer's weights, summed over layers: sum_l ||dL/dW_l||_2, one minibatch, training mode."""
    model = candidate.network()
    loss_backward(model, candidate)
    return float(sum(layer.weight.grad.norm().item() for layer in layers(model) if layer.weight.grad is not None))


@proxy("snip", paper="Lee et al. 2019 (SNIP), as in Abdelfattah et al. 2021 eq. 1: sum |dL/dW * W|")
def snip(candidate: Candidate) -> float:
    """snip (Lee et al. 2019, connection sensitivity; Abdelfattah et al. 2021, eq. 1):
    S = sum over layers and weights of |dL/dw * w| on one minibatch (the gradient with respect to a mask of
    ones multiplying the weights, which is the same thing)."""
    model = candidate.network()
    loss_backward(model, candidate)
    return float(sum((layer.weight.grad * layer.weight).abs().sum().item() for layer in layers(model)
                     if layer.weight.grad is not None))


@proxy("fisher", paper="Theis et al. 2018 / Turner et al. 2020, as in Abdelfattah et al. 2021 eq. 4")
def fisher(candidate: Candidate) -> float:
    """fisher (Theis et al. 2018; Turner et al. 2020; Abdelfattah et al. 2021, eq. 4): for every channel of
    every layer's output activation a (conv: per channel, summed over positions; linear: per unit)
    0.5 * mean over the minibatch of (sum a * dL/da)^2, summed over all channels of all layers."""
    model = candidate.network()
    outputs: list[torch.Tensor] = []

    def keep(module, inputs, output):
        outputs.append(output)
        return output.clone()  # the network goes on with a copy: later in-place ops never touch `output`

    handles = [layer.register_forward_hook(keep) for layer in layers(model)]
    try:
        model.train()
        loss = nn.functional.cross_entropy(model(candidate.x), candidate.y)
        grads = torch.autograd.grad(loss, outputs, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    total = 0.0
    for activation, grad in zip(outputs, grads):
        if grad is None:
            continue
        product = (activation.detach() * grad)
        per_channel = product.sum(dim=tuple(range(2, product.dim()))) if product.dim() > 2 else product
        total += float((0.5 * per_channel.pow(2).mean(0)).sum())
    return total


# ----- data-free -----
@proxy("synflow", paper="Tanaka et al. 2020 (SynFlow), as in Abdelfattah et al. 2021 eq. 3", uses_data=False)
def synflow(candidate: Candidate) -> float:
    """synflow (Tanaka et al. 2020, eq. 2; Abdelfattah et al. 2021, eq. 3): every parameter and buffer
    replaced by its absolute value, the network in double precision (the product of many layers overflows
    float32), an input of ones (one image of the data's shape), R = the sum of the outputs, and
    S = sum over layers and weights of |dR/dw * w|. Batch norm is in eval mode at its initial statistics
    (mean 0, variance 1): the identity up to eps, as the zero-cost paper's code, which removes batch norm
    for synflow. Data-free: the minibatch's images and labels are not read."""
    model = candidate.network().double()
    model.eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *candidate.x.shape[1:]), dtype=torch.float64, device=candidate.device)
    model(ones).sum().backward()
    return float(sum((layer.weight.grad * layer.weight).abs().sum().item() for layer in layers(model)
                     if layer.weight.grad is not None))


# ----- activation-pattern based -----
@torch.no_grad()
def binary_code_kernel(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """NASWOT's kernel K_H (Mellor et al. 2021, eq. 1-2) of the minibatch `x`: K[i, j] = N_A - d_H(c_i, c_j),
    with c_i the binary code (unit > 0) of every ReLU-like unit for input i, N_A the number of units and
    d_H the Hamming distance; accumulated as c c^T + (1 - c)(1 - c)^T over the activation modules."""
    kernel = torch.zeros((x.shape[0], x.shape[0]), dtype=torch.float64)

    def add(module, inputs, output):
        code = (output > 0).flatten(1).to(torch.float64).cpu()
        kernel.add_(code @ code.T + (1.0 - code) @ (1.0 - code).T)

    handles = [m.register_forward_hook(add) for m in model.modules() if isinstance(m, GATES)]
    try:
        model.train()
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return kernel


@proxy("naswot", paper="Mellor et al. 2021 (NASWOT, ICML), eq. 2: log |K_H|")
def naswot(candidate: Candidate) -> float:
    """naswot (Mellor et al. 2021, "Neural Architecture Search without Training", ICML, eq. 2): s = log|K_H|,
    the log-determinant of the binary-code kernel of the minibatch (`binary_code_kernel`; the code of an
    activation is output > 0, which for ReLU, ReLU6, leaky ReLU, SiLU, hardswish and GELU is input > 0).
    Its minimum is -inf: two inputs with the same code (or a network without such activations) make K_H
    singular."""
    kernel = binary_code_kernel(candidate.network(), candidate.x)
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


JACOB_COV_K = 1e-5


def jacob_cov_minimum(n: int) -> float:
    """jacob_cov's smallest finite value for a batch of `n` images: a correlation matrix of rank 1 (eigenvalues
    n, 0, ..., 0), s = -(log(n + k) + 1/(n + k) + (n - 1) (log k + 1/k))."""
    k = JACOB_COV_K
    return -(math.log(n + k) + 1.0 / (n + k) + (n - 1) * (math.log(k) + 1.0 / k))


@proxy("jacob_cov", paper="Mellor et al. 2020 (NASWOT v1), as in Abdelfattah et al. 2021: Jacobian covariance")
def jacob_cov(candidate: Candidate) -> float:
    """jacob_cov (Mellor et al. 2020, first version of NASWOT, eq. 2; the variant of Abdelfattah et al. 2021):
    J = the gradient of the sum of each input's outputs with respect to that input (one row per image),
    Sigma = the correlation matrix of J's rows, lambda its eigenvalues, k = 1e-5, and
    s = -sum(log(lambda + k) + 1 / (lambda + k)). Over the batch's N images the score is largest when the
    rows are uncorrelated (every lambda 1) and smallest when they are all perfectly correlated (eigenvalues
    N, 0, ..., 0: `jacob_cov_minimum(N)`), as for inputs whose activations are the same linear region of a
    ReLU network (equal Jacobians). A Jacobian row that does not vary (no correlation defined) scores -inf."""
    model = candidate.network()
    model.train()
    x = candidate.x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = model(x)
    (jacobian,) = torch.autograd.grad(out, x, torch.ones_like(out))
    rows = jacobian.flatten(1).to(torch.float64)
    centred = rows - rows.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1)
    if not bool(torch.all(norms > 0)):
        return -math.inf
    unit = centred / norms[:, None]
    eigenvalues = torch.linalg.eigvalsh(unit @ unit.T)
    k = JACOB_COV_K
    value = -float(torch.sum(torch.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))
    return value if math.isfinite(value) else -math.inf
