"""What every process shares to talk through RabbitMQ and Redis.

The step routes, the transactional outbox and its publisher, the fleet's broker and message
encoding, live order statuses over Redis, and the sweep that re-enqueues stuck work.
"""
