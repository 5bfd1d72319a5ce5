"""Sessions, the event store, routing names and the dispatcher: transport-independent serving."""
