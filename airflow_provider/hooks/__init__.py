"""Airflow hooks of the Timbal provider."""
