"""rootloop.platforms"""
