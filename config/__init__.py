"""Settings for every process of the fleet, read once from the environment."""

from config.settings import Settings, SettingsError, load_settings, settings_or_exit

__all__ = ["Settings", "SettingsError", "load_settings", "settings_or_exit"]
