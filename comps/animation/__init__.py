"""Lip-sync animation service."""
