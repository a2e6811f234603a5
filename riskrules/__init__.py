"""riskrules: enterprise credit-risk classification policies as checked, versioned text."""
__version__ = "0.1.0"
