"""Simulated field-device firmware that speaks the real wire protocols on pseudo-terminals."""
