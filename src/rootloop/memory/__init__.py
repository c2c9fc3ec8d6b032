"""rootloop.memory"""
