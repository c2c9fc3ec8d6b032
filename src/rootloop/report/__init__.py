"""rootloop.report"""
