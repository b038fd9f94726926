"""music-classifier: a class's song sheet -> SQL tables -> audio features -> genre classifiers."""

__version__ = "0.1.0"
