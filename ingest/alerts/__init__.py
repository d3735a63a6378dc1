"""The alerts worker: follows new readings, raises one alert per episode, delivers them."""
