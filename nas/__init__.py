"""nas: neural architecture search over graph genomes."""
from nas.compiler import build
from nas.errors import GenomeError, NasError
from nas.genome import Genome, Stage
from nas.scaling import scale
from nas.summary import Summary, summary
from nas.transfer import TransferError, transfer_weights

__all__ = ["Genome", "GenomeError", "NasError", "Stage", "Summary", "TransferError", "build", "scale", "summary", "transfer_weights"]
__version__ = "0.1.0"
