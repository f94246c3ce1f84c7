"""Simulated city days through the platform's real code paths: the registry of a city, what a day injects, the day.

scenario/city.py writes the Voorschoten and Wassenaar city (about 6,000 street lights); scenario/day.py plays a
day of a registry and a Script into InfluxDB on a simulated clock; `smartcity scenario` runs one and writes the
council report of it (report/).
"""
