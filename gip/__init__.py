"""gip: publishes a Computing Element's software tags and state through a resource BDII."""

__version__ = "0.1.0"
