"""Provisioning: run the playbooks in playbooks/ with Ansible and return per-host results."""
