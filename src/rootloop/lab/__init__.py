"""rootloop.lab"""
