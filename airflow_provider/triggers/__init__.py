"""Airflow triggers of the Timbal provider (they run in Airflow's triggerer)."""
