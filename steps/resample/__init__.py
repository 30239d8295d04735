"""resample: drizzle images onto a common TAN grid (jwst ResampleStep)."""
