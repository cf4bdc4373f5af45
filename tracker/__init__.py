"""The logistics exception monitor: watches every paid order and parcel and acts on exceptions."""

__version__ = "0.1.0"
