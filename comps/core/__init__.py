"""Small shared framework for every service: settings, errors, app factory, audio, devices, weights."""
