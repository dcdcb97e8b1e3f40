"""flows: Prefect 3 flows for preprocessing, training and batch scoring (issue 7).

Import cost matters (Prefect takes about a second to import), so nothing here is
imported by ``import framestream``; use ``framestream.flows.<module>`` directly.
"""
