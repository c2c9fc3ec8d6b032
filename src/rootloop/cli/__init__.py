"""rootloop.cli"""
