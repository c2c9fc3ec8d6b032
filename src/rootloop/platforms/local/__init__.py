"""rootloop.platforms.local"""
