"""Benchmarks of the issuer against the demo's algorithm and the usual alternatives: `python -m benchmarks`.

Deliberately import-free: `python -m benchmarks.lambda_emulator` imports this package inside every emulated
cold start, and anything imported here would be billed to every contender's init.
"""
