"""The chain's steps as plain functions: state model in, state model out, adapters passed in."""
