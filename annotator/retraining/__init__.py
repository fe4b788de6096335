"""Model versions from the web side: retrain requests and the fast-retrain trigger, the fast model itself."""
