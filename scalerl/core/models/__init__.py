from scalerl.core.models.encoders import MLP, ObsPreprocessor, mlp

__all__ = ["MLP", "ObsPreprocessor", "mlp"]
