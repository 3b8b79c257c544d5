"""Airflow operators of the Timbal provider."""
