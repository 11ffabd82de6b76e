from scalerl.core.models.encoders import MLP, mlp
from scalerl.core.models.observations import CNN, ObsPreprocessor

__all__ = ["CNN", "MLP", "ObsPreprocessor", "mlp"]
