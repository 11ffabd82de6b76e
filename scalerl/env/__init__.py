from scalerl.env.registry import EnvContext, register_env

__all__ = ["EnvContext", "register_env"]
