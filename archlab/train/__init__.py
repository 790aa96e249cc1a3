"""The training layer: recipe, data, metrics, optimizer and the trainer that runs one model."""
