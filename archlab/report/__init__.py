"""The report layer: documents, tables, number formats, plots, one module per report kind."""
