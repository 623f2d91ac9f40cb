"""The ground floor: small pieces every app shares. Imports nothing of ours."""
