"""Weight sharing, reproduced: models, trainers and the results store behind the book's notebooks."""
__version__ = "0.1.0"
