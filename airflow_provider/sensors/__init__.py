"""Airflow sensors of the Timbal provider."""
