"""JSON Schemas of webbcal files (package data)."""
