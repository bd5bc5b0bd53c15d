"""pain-asp: a rules knowledge base that checks interventional pain-management claims."""

__version__ = "0.1.0"
