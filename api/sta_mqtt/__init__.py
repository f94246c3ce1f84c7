"""The SensorThings MQTT extension, receive side (OGC 18-088 section 14.2): live Observations over MQTT.

A service of its own (`smartcity sta-mqtt`) reads the gateways' readings through a share group,
accepts them as the ingest does (known device, the gateway the registry assigns it, value type,
unit, lateness and skew bounds), and publishes each reading of a public (openbaar) device as the
Observation JSON of the HTTP API to its Datastream's topic and to the Observations collection's.
Anonymous consumers read those topics on the broker's open-data listener (deploy/mosquitto.py).
"""
