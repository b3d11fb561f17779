"""hvcfilter: design, lint, compile and dry-run KVM/arm64 SMCCC filter tables."""

__version__ = "0.1.0"
