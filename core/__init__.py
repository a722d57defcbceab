"""FitStudio's engine: data, models and training, with no Qt anywhere below this package."""
