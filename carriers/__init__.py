"""Courier tracking adapters: providers' payloads in, one common tracking model out.

This package never imports :mod:`tracker`.
"""
