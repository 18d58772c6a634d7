"""Embedded word lists for the simulator: names, streets, cities and legal forms per country."""
