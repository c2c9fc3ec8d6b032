"""rootloop.platforms.github"""
