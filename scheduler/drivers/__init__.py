"""Endpoint drivers: one module per kind of loudspeaker endpoint, one small interface."""
