"""rootloop.platforms.aws"""
