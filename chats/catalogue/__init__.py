"""The catalogue: providers (the upstreams), models (what clients ask for, at what price) and the
deployments that serve each model on a provider. Staff edit it in the admin or as a file
(``manage.py llm_config``); ``check_providers`` reaches every deployment."""
