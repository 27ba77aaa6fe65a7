"""OTP-style supervision of asyncio tasks.

Rule: knows nothing about Kubernetes; imports nothing from the rest of kubevisor.
"""

__all__: list[str] = []
