"""Shipped webbcal recipes (YAML files; package data)."""
