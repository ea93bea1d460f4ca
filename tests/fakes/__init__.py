"""Stand-ins for the services Parley talks to, real servers on loopback: tests and benchmarks import them."""
