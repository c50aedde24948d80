"""heavytail: a reproduction of Zhang et al. (2020), Why are Adaptive Methods Good for Attention Models?"""

__version__ = "0.1.0"
