"""Trader identity: claims (every handler), JWT verification and the local issuer."""
